package firestore

import (
	"maps"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
)

// threadCacheMax bounds the thread summaries kept in memory (a few hundred
// bytes each): enough for every active thread of a busy host; a thread
// that falls out is read again on its next message.
const threadCacheMax = 4096

// threadCache remembers each thread summary as this store last wrote (or
// read) it, with its update time, so that a live message can update the
// summary without reading it first. The cached update time is the write's
// precondition: if anyone else (the app, another instance, history) has
// changed the thread since, the commit is refused and the store reads the
// thread and decides again. A stale entry therefore costs a retry, never a
// wrong summary.
type threadCache struct {
	mu sync.Mutex
	m  map[string]cachedThread
}

type cachedThread struct {
	data    map[string]any
	updated time.Time
}

func (c *threadCache) get(path string) (cachedThread, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[path]
	return t, ok
}

// put keeps t unless a newer version of the thread is already cached.
func (c *threadCache) put(path string, t cachedThread) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedThread{}
	}
	if cur, ok := c.m[path]; ok && cur.updated.After(t.updated) {
		return
	}
	if _, ok := c.m[path]; !ok && len(c.m) >= threadCacheMax {
		for k := range c.m { // any one: the next message of it reads again
			delete(c.m, k)
			break
		}
	}
	c.m[path] = t
}

func (c *threadCache) drop(path string) {
	c.mu.Lock()
	delete(c.m, path)
	c.mu.Unlock()
}

// afterWrite is the thread's data once ups are applied to cur.
func afterWrite(cur map[string]any, ups []firestore.Update) map[string]any {
	d := maps.Clone(cur)
	if d == nil {
		d = map[string]any{}
	}
	for _, u := range ups {
		d[u.Path] = u.Value
	}
	return d
}
