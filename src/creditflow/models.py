"""Every mapped table, imported in one place for Alembic and for `create_all` in tests."""

from creditflow.auth.models import ApiKey
from creditflow.coupon.models import Coupon, CouponRedemption, SubscriptionDiscount
from creditflow.credits.checkpoint_models import LedgerCheckpoint, LedgerCheckpointAccount, LedgerCheckpointLot
from creditflow.credits.models import CreditAccount, CreditEntry, CreditLot, CreditSpend
from creditflow.credits.generation_models import CreditTransfer, CreditUsage
from creditflow.customer.models import Customer, TestClock
from creditflow.events.models import Event, WebhookDelivery, WebhookEndpoint
from creditflow.idempotency.models import IdempotencyRecord
from creditflow.invoicing.models import Counter, Invoice, InvoiceLine
from creditflow.kit.db import Base
from creditflow.kit.db.heartbeats import WorkerHeartbeat
from creditflow.notify.models import Email
from creditflow.payment.models import PaymentAttempt, SandboxCharge, SandboxRefund
from creditflow.portal.models import PortalSession
from creditflow.refund.models import Refund
from creditflow.subscription.models import Quote, Subscription
from creditflow.support.models import AuditRecord, ConsoleSession, SupportUser
from creditflow.team.models import AutoTopUp, Team, TeamMember, TeamSpend

__all__ = [
    "LedgerCheckpoint", "LedgerCheckpointAccount", "LedgerCheckpointLot",
    "Base", "CreditAccount", "CreditEntry", "CreditLot", "CreditSpend", "Customer", "TestClock", "Event",
    "Counter", "Invoice", "InvoiceLine", "PaymentAttempt", "SandboxCharge", "SandboxRefund", "Subscription", "Quote",
    "ApiKey", "IdempotencyRecord", "PortalSession", "Refund", "WebhookDelivery", "WebhookEndpoint",
    "AuditRecord", "ConsoleSession", "SupportUser", "Coupon", "CouponRedemption", "SubscriptionDiscount",
    "Email", "WorkerHeartbeat", "CreditTransfer", "CreditUsage",
    "Team", "TeamMember", "TeamSpend", "AutoTopUp",
]
