"""Query expressions as plain values: built by the API, read by the executor below it.

A leaf of the layering (it imports only ``gleandb.index.depth`` and the standard
library), after chromadb's ``execution/expression``: ``gleandb.api`` re-exports the
classes users build, ``gleandb.retrieval`` evaluates them, and neither imports the other
to share them.
"""
