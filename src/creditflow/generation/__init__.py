"""Priced generations, as the host app sees them: what a job costs this customer now (its
estimate, free inside an unlimited window), spends and holds by options, and what each feature
allows the customer (entitlements).

It sits above the subscription package because an unlimited window starts with the customer's
billing period, and above credits, whose spend and hold apply the limits under the account lock
(credits/limits.py). `windows` is pure; `service` holds the use cases.
"""
