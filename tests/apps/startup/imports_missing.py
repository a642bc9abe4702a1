import a_dependency_that_is_not_installed  # noqa: F401
from robyn import Robyn

app = Robyn(__file__)
