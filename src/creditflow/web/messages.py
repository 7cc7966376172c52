"""Errors in plain words for the billing page: what happened, and that nothing changed."""

from __future__ import annotations

from creditflow.kit.errors import CreditflowError

NOTHING_CHANGED = "Nothing was charged and nothing changed."

BY_CODE = {
    "quote_expired": "This price was only valid for a limited time and has expired. " + NOTHING_CHANGED
                     + " Here is the current price.",
    "quote_stale": "Your subscription changed since this price was worked out. " + NOTHING_CHANGED
                   + " Here is the current price.",
    "payment_pending": "Your bank hasn't confirmed the payment yet. We'll apply it as soon as it does; "
                       "you won't be charged twice.",
    "scheduled_upgrade_pending": "You can't cancel while an upgrade is scheduled. Cancel the scheduled "
                                 "upgrade first, then cancel your subscription.",
    "subscription_required": "Credit top-ups need an active subscription. " + NOTHING_CHANGED,
    "subscription_busy": "Your subscription is being renewed right now. Please try again in a minute. "
                         + NOTHING_CHANGED,
    "no_scheduled_change": "There's no scheduled change to cancel any more.",
    "not_cancelling": "Your subscription isn't set to cancel, so there's nothing to resume.",
    "subscription_canceling": "Your subscription is set to cancel. Resume it before scheduling a change.",
    "subscription_not_active": "This needs an active subscription. " + NOTHING_CHANGED,
    "subscription_exists": "You already have a subscription.",
    "same_plan": "You're already on this plan.",
    "support_only": "This change can only be made by our support team. Please contact them.",
}


def plain(exc: CreditflowError) -> str:
    """The message to show for a failed action."""
    if exc.code == "payment_failed":
        reason = exc.message.strip().rstrip(".")
        if "no payment method" in reason.lower():
            reason = "there's no payment method on file"
        else:
            reason = reason[:1].lower() + reason[1:]
        return f"We couldn't take the payment: {reason}. {NOTHING_CHANGED}"
    if exc.code in BY_CODE:
        return BY_CODE[exc.code]
    message = exc.message.strip()
    message = message[:1].upper() + message[1:]
    if not message.endswith("."):
        message += "."
    return message
