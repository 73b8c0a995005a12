"""Wire frames and codecs: the only contract between storepos processes."""
