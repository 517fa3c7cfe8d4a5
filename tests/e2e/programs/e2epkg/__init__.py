"""A package run with `python -m e2epkg.main`."""
PACKAGE_STATE = {"imported": True}
