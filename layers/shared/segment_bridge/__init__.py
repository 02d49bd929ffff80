"""segment-bridge: SaaS tool webhooks in, Segment Spec messages out, per tenant and region."""

__version__ = "1.0.0"
