"""verification: checks any module that follows refnet's module protocol (CONTRACT.md)."""
