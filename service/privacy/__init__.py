"""Member privacy (PIPL): the support card, the export of a member's data, erasure."""
