package providers

import (
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Factory builds a provider account from its configuration. It does no I/O.
type Factory func(cfg Config) (Provider, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes an adapter type available by name. It panics if name is
// empty, factory is nil, or the name is registered twice: those are
// programmer errors.
func Register(name string, factory Factory) {
	mu.Lock()
	defer mu.Unlock()
	if name == "" {
		panic("providers: Register with an empty name")
	}
	if factory == nil {
		panic("providers: Register factory is nil for " + name)
	}
	if _, dup := factories[name]; dup {
		panic("providers: Register called twice for " + name)
	}
	factories[name] = factory
}

// Types lists the registered adapter types, sorted.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Known reports whether an adapter type is registered.
func Known(typ string) bool {
	return slices.Contains(Types(), typ)
}

// Open builds the account cfg with the factory registered for cfg.Type.
func Open(cfg Config) (Provider, error) {
	mu.RLock()
	f, ok := factories[cfg.Type]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("providers: unknown type %q (forgotten import?); known: %v", cfg.Type, Types())
	}
	return f(cfg)
}
