"""Cases: complaint centre, case management and referral, child safeguarding."""
