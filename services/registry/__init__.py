"""Registry: social-service institutions (AUMSos), their governance and accreditation."""
