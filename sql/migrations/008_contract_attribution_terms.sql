-- How a contract's attribution is run, beyond its method and top_k: the shares policy's
-- confidence rule and dust threshold, and the method's own parameters (e.g. TRAK's
-- curvature), as JSON objects checked when the contract is registered
-- (settlement.reference.register_contract). '{}' means the product defaults.
ALTER TABLE ref.contracts ADD COLUMN IF NOT EXISTS shares_policy_json VARCHAR DEFAULT '{}';
ALTER TABLE ref.contracts ADD COLUMN IF NOT EXISTS method_params_json VARCHAR DEFAULT '{}';
