"""The 120 phone line and SMS, through Twilio."""
