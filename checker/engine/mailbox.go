package engine

import "sync"

// mailbox queues what other goroutines deliver to an entry (deaths from
// the watcher, attempt results from the stall monitors) without ever
// blocking them: put appends and signals ready, which holds at most one
// signal; the entry's goroutine takes everything queued at once.
type mailbox[T any] struct {
	mu    sync.Mutex
	items []T
	// ready has a value when items are waiting (buffer 1).
	ready chan struct{}
}

func newMailbox[T any]() mailbox[T] { return mailbox[T]{ready: make(chan struct{}, 1)} }

// put queues v and returns at once.
func (b *mailbox[T]) put(v T) {
	b.mu.Lock()
	b.items = append(b.items, v)
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// take returns everything queued, oldest first, and empties the box.
func (b *mailbox[T]) take() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	items := b.items
	b.items = nil
	return items
}
