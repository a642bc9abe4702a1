from robyn import Robyn

import a_dependency_that_is_not_installed  # noqa: F401

app = Robyn(__file__)
