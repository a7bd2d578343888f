"""The code-generation core every target shares: the emitter (one class per definition,
written from the spec's syntax tree and the elaboration's records), class planning, naming,
line layout, docstrings and refusals. A target adds only its lowering tables and layout."""
