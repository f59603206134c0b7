"""Helpers shared by every test package: private databases and vhosts on the machine's real services."""
