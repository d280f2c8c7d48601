"""`make up`, `make preview`, `make refresh`, `make destroy`: the Pulumi engine driven through
the Automation API, with the program (`__main__.py`) run inline in this Python environment."""
