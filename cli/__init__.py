"""The `scoring` command line: the library, training and serving behind one command."""
