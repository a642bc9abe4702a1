"""HTTP status code constants under Robyn's names (``HTTP_404_NOT_FOUND``...)."""

from http import HTTPStatus

# `__members__` keeps the older names that newer Pythons made aliases (Python 3.13 calls 422
# UNPROCESSABLE_CONTENT; Robyn's name is HTTP_422_UNPROCESSABLE_ENTITY).
globals().update({f"HTTP_{status.value}_{name}": status.value for name, status in HTTPStatus.__members__.items()})
# Reserved by RFC 9110 and so not in HTTPStatus, but Robyn names it.
HTTP_306_RESERVED = 306
