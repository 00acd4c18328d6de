"""What the tests and the bench both use (starting processes, keys and signatures, a raw HTTP/1.1
client, waiting with a deadline). Neither tests/ nor bench/ imports the other; both import this."""
