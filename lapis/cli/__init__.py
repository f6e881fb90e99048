"""The ``lapis`` command line: ``lapis NOUN VERB``, one module per noun."""
