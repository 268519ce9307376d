package ring

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFIFOAndDrops(t *testing.T) {
	r, err := New[int](4)
	require.NoError(t, err)
	for i := range 6 {
		v := i
		r.Push(&v)
	}
	assert.Equal(t, uint64(2), r.Dropped())
	assert.Equal(t, 4, r.Len())
	var got []int
	var v int
	for r.Pop(&v) {
		got = append(got, v)
	}
	assert.Equal(t, []int{0, 1, 2, 3}, got)
}

func TestRejectsSize(t *testing.T) {
	_, err := New[int](3)
	require.ErrorContains(t, err, "power of two")
}

func TestConcurrentProducerConsumer(t *testing.T) {
	r, err := New[uint64](64)
	require.NoError(t, err)
	const n = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(0); i < n; i++ {
			// Retry: this test wants every element; the loop would count the drop instead.
			for !r.Push(&i) {
				runtime.Gosched()
			}
		}
	}()
	var next, v uint64
	for next < n {
		if r.Pop(&v) {
			require.Equal(t, next, v)
			next++
		}
	}
	wg.Wait()
}

func TestPushDoesNotAllocate(t *testing.T) {
	type rec struct{ a, b int64 }
	r, err := New[rec](8)
	require.NoError(t, err)
	v := rec{1, 2}
	var out rec
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		r.Push(&v)
		r.Pop(&out)
	}))
}
