"""An app naming an OpenAPI file that is not there: start-up stops, naming it."""

from robyn import Robyn

app = Robyn(__file__, openapi_file_path="no_such_spec.json")
