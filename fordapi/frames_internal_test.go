package fordapi

import (
	"sync"
	"sync/atomic"
	"testing"
)

// A flood of frames, as at a fleet's start when every socket sends its
// first record at once: at most the workers and maxFrameExtras frames run
// at once, the rest wait their turn, and every one of them runs.
func TestFramesBesideTheWorkersAreBounded(t *testing.T) {
	bound := int64(maxFrameWorkers) + maxFrameExtras
	const frames = 120
	var running, most, ran atomic.Int64
	release := make(chan struct{})
	full := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for range frames {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = handleOffStack(func() error {
				n := running.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				if n == bound {
					once.Do(func() { close(full) })
				}
				<-release
				running.Add(-1)
				ran.Add(1)
				return nil
			})
		}()
	}
	<-full // every slot holds one of these frames (other tests' frames come and go)
	close(release)
	wg.Wait()
	if most.Load() > bound {
		t.Errorf("%d frames ran at once, want at most %d (%d workers, %d extras)", most.Load(), bound, maxFrameWorkers, maxFrameExtras)
	}
	if ran.Load() != frames {
		t.Errorf("%d of %d frames ran", ran.Load(), frames)
	}
}
