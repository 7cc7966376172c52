"""Everything that takes money: subscribe, change plan, renew, top up, refund, end at once.

Each purchase goes through the same steps (`checkout`): open an invoice, commit a pending
payment attempt, call the gateway outside any transaction, then settle the attempt and fulfil
the invoice (`fulfilment`) in one transaction, so a charge and its effect commit together.
These use cases alone open the transactions around a gateway call; every other use case runs
in the transaction of its entry point.
"""
