"""The local stack of the billing service (`billing-dev`): everything `make run` and the tests start
around the service that is not the service. Installed editable beside it, never in its wheel."""
