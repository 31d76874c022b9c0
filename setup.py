"""Only the optional compiled helpers live here; pyproject.toml holds the metadata.

`optional=True`: without a C compiler the install still succeeds. guest_creator.hashing then
falls back to pure Python (identical results, much slower), and `v3 run --telemetry` reports
guest blocks as not counted.
"""
from setuptools import Extension, setup

setup(ext_modules=[
    Extension("guest_creator._v3hash", ["guest_creator/_v3hash.c"], optional=True),
    Extension("vmm._blockcount", ["vmm/_blockcount.c"], optional=True),
])
