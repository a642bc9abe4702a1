"""A module without a Robyn app."""

VALUE = 1
