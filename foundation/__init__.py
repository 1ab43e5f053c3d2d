"""Ground floor: the vocabulary every package may use (types, errors, config, tokens, atomic files).

Imports nothing of ours."""
