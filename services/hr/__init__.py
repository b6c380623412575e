"""HR: social workers (SDM sosial): training, certification, deployment, integrity pact."""
