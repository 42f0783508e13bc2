package fordapi

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// TestAFrameDoesNotWaitForSlowCars: with every frame worker held by a
// slow car's frame, and a few more slow frames beside them (fewer than
// maxFrameExtras), another car's frame still runs at once and returns its
// own outcome. (Past the workers and maxFrameExtras, a frame waits for the
// first to finish: TestFramesBesideTheWorkersAreBounded.)
func TestAFrameDoesNotWaitForSlowCars(t *testing.T) {
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range int(maxFrameWorkers) + 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = handleOffStack(func() error { <-release; return nil })
		}()
	}
	want := errors.New("the other car's outcome")
	done := make(chan error, 1)
	go func() { done <- handleOffStack(func() error { return want }) }()
	select {
	case err := <-done:
		if err != want {
			t.Fatalf("got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a frame waited for the slow ones")
	}
	close(release)
	wg.Wait()
	// The workers are free again: the next frames run on them.
	for range 3 {
		if err := handleOffStack(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
}
