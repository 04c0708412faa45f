"""Format readers: each turns a data set as an exporter wrote it into a :class:`Manifest`."""
