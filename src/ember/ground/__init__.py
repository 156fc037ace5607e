"""Grounding: documents in, cited and checked answers out.

``parsers`` turn files into sections (text with page and heading), ``chunking`` cuts them
into embedder-sized chunks, ``index`` keeps chunks, vectors (sqlite-vec) and BM25 terms in
Ember's database, ``retrieval`` fuses dense and lexical hits, ``filters`` evaluates OpenAI
attribute filters, ``support`` checks answer sentences against their sources.
"""
