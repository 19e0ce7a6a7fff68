from everruns.core.prepared import numbered


def test_placeholders_are_numbered_in_order():
    assert numbered('SELECT 1 FROM "t" WHERE "a" = %s AND "b" IN (%s, %s)') == (
        'SELECT 1 FROM "t" WHERE "a" = $1 AND "b" IN ($2, $3)'
    )


def test_a_doubled_percent_is_a_percent_sign():
    assert numbered("SELECT 'a%%b' WHERE x = %s") == "SELECT 'a%b' WHERE x = $1"


def test_a_statement_without_placeholders_is_unchanged():
    assert numbered('SELECT "id" FROM "t" LIMIT 1') == 'SELECT "id" FROM "t" LIMIT 1'


def test_named_parameters_cannot_be_prepared():
    assert numbered("SELECT %(a)s") is None
    assert numbered("SELECT 100%") is None
