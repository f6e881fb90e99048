"""Child programs that run inside users' environments, not in the server.

Each module here is copied as a single file next to the user's code and run by
the user's interpreter, so it imports the standard library only and keeps to
syntax every supported Python (3.8 and later) understands.
"""
