"""`mpks audit …`: what auditors run: the tenant export and the verification of the logs'
hash chains."""
