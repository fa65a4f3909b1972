// Package normalize holds refundgate's canonical vocabulary: the Refund and
// its Status machine, Reason, Money with ISO 4217 minor-unit exponents, the
// error Code catalogue and the Error type. It imports nothing of refundgate
// and names no provider.
package normalize
