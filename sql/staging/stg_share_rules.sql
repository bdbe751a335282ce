-- How a generation's shares were decided, in words a rights holder reads on a statement:
-- which rule paid it and the statistic it was judged on, from attribution.share_rules (what
-- the run stored; nothing recomputed). NULL for a generation attributed before the rule was
-- stored.
CREATE SCHEMA IF NOT EXISTS staging;

-- A statistic as a person reads it: 3 significant digits, an exponent below 1e-4.
CREATE OR REPLACE MACRO staging.share_rule_number(x) AS
CASE
    WHEN x IS NULL THEN 'n/a'
    WHEN isinf(x) THEN CASE WHEN x > 0 THEN 'inf' ELSE '-inf' END
    WHEN x = 0 THEN '0'
    WHEN abs(x) < 0.0001 THEN printf('%.2e', x)
    ELSE CAST(CAST(round(x, CAST(2 - floor(log10(abs(x))) AS INTEGER)) AS DOUBLE) AS VARCHAR)
END;

-- Whether the rule's test passed, and the test as written: "p = 0.003 <= alpha 0.01",
-- "zscore 7.2 >= 6.0".
CREATE OR REPLACE MACRO staging.share_rule_passed(rule, alpha, min_confidence, confidence, p_value) AS
CASE WHEN rule = 'pvalue' THEN p_value <= alpha
     WHEN rule = 'none' THEN true
     ELSE confidence >= min_confidence END;

CREATE OR REPLACE MACRO staging.share_rule_test(rule, alpha, min_confidence, confidence, p_value) AS
CASE WHEN rule = 'pvalue' THEN
          'p = ' || staging.share_rule_number(p_value)
          || CASE WHEN p_value <= alpha THEN ' <= ' ELSE ' > ' END
          || 'alpha ' || staging.share_rule_number(alpha)
     WHEN rule = 'none' THEN 'no confidence test'
     ELSE rule || ' ' || staging.share_rule_number(confidence)
          || CASE WHEN confidence >= min_confidence THEN ' >= ' ELSE ' < ' END
          || staging.share_rule_number(min_confidence) END;

-- "paid by attribution (p = 0.003 <= alpha 0.01)", "fallback: not significant (p = 0.41 >
-- alpha 0.01)"; a generation that passed its test and still fell back had no work left with a
-- share (no positive score, or every share under the policy's min_share).
CREATE OR REPLACE MACRO staging.share_rule_note(rule, alpha, min_confidence, confidence, p_value, paid_by) AS
CASE
    WHEN rule IS NULL THEN NULL
    WHEN paid_by = 'attribution' THEN 'paid by attribution'
    WHEN staging.share_rule_passed(rule, alpha, min_confidence, confidence, p_value)
        THEN 'fallback: no work kept a share'
    WHEN rule = 'pvalue' THEN 'fallback: not significant'
    ELSE 'fallback: not confident'
END || ' (' || staging.share_rule_test(rule, alpha, min_confidence, confidence, p_value) || ')';

CREATE OR REPLACE VIEW staging.share_rules AS
SELECT r.*, staging.share_rule_note(r.rule, r.alpha, r.min_confidence, r.confidence, r.p_value,
                                    r.paid_by) AS paid_by_note
FROM attribution.share_rules AS r;
