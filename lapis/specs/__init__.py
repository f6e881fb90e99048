"""The YAML kernel and the parsers of the documents users write (Azure ML's shapes).

Everything here is pure: text in, checked values or a line-located error out; no
store, no service. Every layer may import it.
"""
