"""Reading CRM exports and writing outputs safely."""
