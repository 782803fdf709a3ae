"""The TISS message core: reading, schema validation and the epílogo hash."""
