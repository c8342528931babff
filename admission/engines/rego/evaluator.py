from admission.engines.rego.gatekeeper import ConstraintSet as RegoEvaluator
