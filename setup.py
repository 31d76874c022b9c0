"""Only the optional compiled hash helper lives here; pyproject.toml holds the metadata.

`optional=True`: without a C compiler the install still succeeds and guest_creator.hashing
falls back to pure Python (identical results, much slower).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("guest_creator._v3hash", ["guest_creator/_v3hash.c"], optional=True)])
