"""HTTP status code constants under Robyn's names (``HTTP_404_NOT_FOUND``...)."""

from http import HTTPStatus

globals().update({f"HTTP_{status.value}_{status.name}": status.value for status in HTTPStatus})
