/* pool.c: the element-wise team (see pool.h). One job at a time: the
 * caller publishes it under the lock and bumps the generation, then every
 * member, the caller included, claims parts until none is left. A helper
 * that the scheduler wakes late finds the parts taken: the caller never
 * waits for a thread that has not started its part, which matters on a
 * machine whose cores are busy with other work. */
#include "ffstream/pool.h"

#include <pthread.h>
#include <stdatomic.h>

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    pthread_t helpers[FF_POOL_MAX_THREADS];
    int threads; /* team size asked for, the caller included */
    int started; /* helpers running */
    int quit;
    unsigned long generation;
    /* the job */
    ff_pool_fn fn;
    void *ctx;
    size_t n, parts, next, finished;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER,
          .threads = 1};

static atomic_flag busy = ATOMIC_FLAG_INIT;

/* Claims and runs parts of the current job until none is left. Called and
 * returns with the lock held. */
static void run_parts(void) {
    while (pool.next < pool.parts) {
        size_t k = pool.next++, n = pool.n, parts = pool.parts;
        ff_pool_fn fn = pool.fn;
        void *ctx = pool.ctx;
        pthread_mutex_unlock(&pool.lock);
        fn(ctx, n * k / parts, n * (k + 1) / parts);
        pthread_mutex_lock(&pool.lock);
        if (++pool.finished == parts) pthread_cond_signal(&pool.done);
    }
}

static void *helper_main(void *arg) {
    unsigned long seen = (unsigned long)(size_t)arg; /* the generation it was started in */
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.generation == seen && !pool.quit) pthread_cond_wait(&pool.work, &pool.lock);
        if (pool.quit) break;
        seen = pool.generation;
        run_parts();
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

void ff_pool_shutdown(void) {
    pthread_mutex_lock(&pool.lock);
    pool.quit = 1;
    pthread_cond_broadcast(&pool.work);
    int started = pool.started;
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < started; i++) pthread_join(pool.helpers[i], NULL);
    pthread_mutex_lock(&pool.lock);
    pool.started = 0;
    pool.quit = 0;
    pthread_mutex_unlock(&pool.lock);
}

void ff_pool_set_threads(int threads) {
    if (threads < 1) threads = 1;
    if (threads > FF_POOL_MAX_THREADS) threads = FF_POOL_MAX_THREADS;
    if (threads < pool.started + 1) ff_pool_shutdown();
    pool.threads = threads;
}

int ff_pool_threads(void) { return pool.threads; }

/* Starts the helpers still missing (lock held). @return the team size. */
static int start_helpers(void) {
    while (pool.started + 1 < pool.threads) {
        if (pthread_create(&pool.helpers[pool.started], NULL, helper_main,
                           (void *)(size_t)pool.generation) != 0)
            break;
        pool.started++;
    }
    return pool.started + 1;
}

void ff_pool_for(size_t n, size_t grain, ff_pool_fn fn, void *ctx) {
    if (grain == 0) grain = 1;
    size_t parts = n / grain;
    if (parts > (size_t)pool.threads) parts = (size_t)pool.threads;
    if (parts <= 1 || atomic_flag_test_and_set(&busy)) { /* small, or the team is taken */
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    size_t team = (size_t)start_helpers();
    if (parts > team) parts = team;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.parts = parts;
    pool.next = pool.finished = 0;
    pool.generation++;
    if (parts > 1) pthread_cond_broadcast(&pool.work);
    run_parts();
    while (pool.finished < pool.parts) pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    atomic_flag_clear(&busy);
}
