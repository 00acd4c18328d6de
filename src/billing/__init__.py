"""Usage and billing service for prepaid AI time."""

# The generated protobuf modules live under gen/billing/v1 (package billing.v1);
# extend_path lets `billing.v1` resolve there while the rest of `billing` is src/.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
