package normalize

import (
	"errors"
	"fmt"
	"testing"
)

func TestStatusMachine(t *testing.T) {
	all := []Status{StatusRequiresApproval, StatusPending, StatusSucceeded, StatusFailed, StatusCanceled}
	legal := map[[2]Status]bool{
		{StatusRequiresApproval, StatusPending}:   true,
		{StatusRequiresApproval, StatusCanceled}:  true,
		{StatusRequiresApproval, StatusSucceeded}: true,
		{StatusRequiresApproval, StatusFailed}:    true,
		{StatusPending, StatusSucceeded}:          true,
		{StatusPending, StatusFailed}:             true,
	}
	for _, from := range all {
		if !from.Valid() {
			t.Errorf("%s is not Valid", from)
		}
		for _, to := range all {
			if got := from.CanTransition(to); got != legal[[2]Status{from, to}] {
				t.Errorf("%s → %s: CanTransition = %v", from, to, got)
			}
		}
		if from.Terminal() {
			for _, to := range all {
				if from.CanTransition(to) {
					t.Errorf("terminal %s may change to %s", from, to)
				}
			}
		}
	}
	if Status("done").Valid() || Reason("because").Valid() || !ReasonDuplicate.Valid() {
		t.Error("Valid accepts an unknown value or refuses a known one")
	}
}

func TestExponentsAndMoney(t *testing.T) {
	for cur, want := range map[string]int{"ZAR": 2, "JPY": 0, "KWD": 3, "EUR": 2, "CLF": 4, "BHD": 3, "KRW": 0} {
		if got, ok := Exponent(cur); !ok || got != want {
			t.Errorf("Exponent(%s) = %d, %v; want %d", cur, got, ok, want)
		}
	}
	for _, bad := range []string{"zar", "XXX", "", "EURO"} {
		if ValidCurrency(bad) {
			t.Errorf("ValidCurrency(%q) = true", bad)
		}
	}
	for _, tc := range []struct {
		m    Money
		want string
	}{
		{Money{10000, "ZAR"}, "100.00 ZAR"}, {Money{5, "ZAR"}, "0.05 ZAR"}, {Money{1500, "JPY"}, "1500 JPY"},
		{Money{1234, "KWD"}, "1.234 KWD"}, {Money{-250, "EUR"}, "-2.50 EUR"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.m, got, tc.want)
		}
	}
	for _, tc := range []struct {
		amount   int64
		from, to int
		want     int64
		err      bool
	}{
		{1234, 2, 2, 1234, false}, {12, 0, 2, 1200, false}, {1200, 2, 0, 12, false}, {1234, 2, 0, 0, true}, {5, 3, 2, 0, true},
	} {
		got, err := ConvertExponent(tc.amount, tc.from, tc.to)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ConvertExponent(%d, %d, %d) = %d, %v", tc.amount, tc.from, tc.to, got, err)
		}
	}
}

func TestErrorWrapsItsCause(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	err := fmt.Errorf("create: %w", Wrap(cause, CodeProviderError, "provider down"))
	if CodeOf(err) != CodeProviderError || !errors.Is(err, cause) {
		t.Errorf("CodeOf = %s, Is(cause) = %v", CodeOf(err), errors.Is(err, cause))
	}
	if CodeOf(cause) != CodeInternal {
		t.Error("a plain error is not internal")
	}
	fe := FieldErr(CodeValidationFailed, "amount", "min", "amount must be at least 1")
	if fe.Param != "amount" || len(fe.Fields) != 1 || fe.Fields[0].Code != "min" {
		t.Errorf("FieldErr = %+v", fe)
	}
	seen := map[Code]bool{}
	for _, c := range Codes {
		if seen[c] {
			t.Errorf("code %s listed twice", c)
		}
		seen[c] = true
	}
	if len(Codes) != 27 {
		t.Errorf("%d codes, want the 26 of API.md and internal_error", len(Codes))
	}
}
