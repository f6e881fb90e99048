"""MLflow's search grammar, translated to SQLAlchemy Core.

``grammar`` parses filter and order_by strings; ``checks`` says what each
search accepts; ``sql`` holds the comparisons that must read the same on
SQLite and PostgreSQL; ``runs``, ``experiments`` and ``registry`` build one
``SELECT`` of keys per search; ``paging`` encodes MLflow-style page tokens.
Callers import the submodule they need, so importing this package stays cheap.
"""
