raise ImportError("the installed robyn package was imported instead of the server's own")
