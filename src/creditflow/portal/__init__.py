"""Portal sessions: the one-time link that opens the Billing and Subscription page."""
