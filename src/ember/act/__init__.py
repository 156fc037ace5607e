"""Acting: tools a model may call (``tools.py``: the protocol and the registry), one module
per built-in tool (``file_search.py``)."""
