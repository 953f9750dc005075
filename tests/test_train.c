/* test_train: end to end on real Fashion-MNIST subsets. bp and ff-mem learn
 * well above chance (thresholds measured, with margin), runs are
 * deterministic bit for bit, and the memory accounting matches the model. */
#include "testutil.h"
#include "ffstream/config.h"
#include "ffstream/dense.h"
#include "ffstream/memmodel.h"
#include "ffstream/progress.h"
#include "ffstream/train.h"

static ff_config_t base_config(const char *data, ff_mode_t mode) {
    ff_config_t cfg;
    ff_config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", data);
    cfg.mode = mode;
    cfg.train_limit = 10000;
    cfg.test_limit = 2000;
    cfg.hidden = 256;
    cfg.batch = 500;
    cfg.quiet = 1;
    cfg.threads = 2;
    return cfg;
}


static void test_bp_learns(const char *data) {
    /* Measured 78.5% (10k train, 2k test, 2x256, batch 500, lr 0.001, 3 epochs);
     * the PyTorch reference (tools/reference/ff_torch.py) gives 78.8%. */
    ff_config_t cfg = base_config(data, FF_MODE_BP);
    cfg.lr = 0.001;
    cfg.epochs = 3;
    ff_result_t res;
    CHECK(check_train(&cfg, &res) == 0);
    printf("bp: accuracy %.4f, loss %.4f -> %.4f, %.2f s\n", res.test_accuracy,
           res.per_epoch[0].loss, res.per_epoch[2].loss, res.train_seconds);
    CHECK(res.test_accuracy > 0.70);
    CHECK(res.per_epoch[2].loss < res.per_epoch[0].loss);
    /* Weights of 2 body layers and the head, each counted once. */
    uint64_t params = (784 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10);
    CHECK(res.memory.peak[FF_MEM_WEIGHTS] == params * 4);
    CHECK(res.memory.peak[FF_MEM_OPTIMIZER] == params * 8);
    CHECK(res.memory.peak[FF_MEM_GRADIENTS] == params * 4);
    CHECK(res.peak_rss_bytes > res.memory.peak_total);
    ff_result_free(&res);
}

static void test_ffmem_learns(const char *data) {
    /* Measured 44.6% after 5 epochs (1x256, batch 500, lr 0.01). */
    ff_config_t cfg = base_config(data, FF_MODE_FF_MEM);
    cfg.layers = 1;
    cfg.lr = 0.01;
    cfg.epochs = 5;
    ff_result_t res;
    CHECK(check_train(&cfg, &res) == 0);
    const ff_layer_result_t *l = &res.per_layer[0];
    printf("ff-mem 1 layer: accuracy %.4f, loss %.4f, goodness pos %.3f neg %.3f\n",
           res.test_accuracy, l->loss, l->goodness_pos, l->goodness_neg);
    CHECK(res.test_accuracy > 0.35);
    /* Measured loss 1.360 and separation 0.073: 2 ln 2 = 1.386 is the loss of
     * a layer that has learnt nothing. */
    CHECK(l->loss < 1.375);
    CHECK(l->goodness_pos > l->goodness_neg + 0.03);
    ff_result_free(&res);
}

static void test_ffmem_deterministic(const char *data) {
    ff_config_t cfg = base_config(data, FF_MODE_FF_MEM);
    cfg.layers = 2;
    cfg.epochs = 2;
    cfg.lr = 0.01;
    cfg.train_limit = 4000;
    cfg.test_limit = 500;
    ff_result_t a, b, c;
    CHECK(check_train(&cfg, &a) == 0);
    CHECK(check_train(&cfg, &b) == 0);
    cfg.seed = 2;
    CHECK(check_train(&cfg, &c) == 0);
    printf("ff-mem 2 layers: weights %016llx / %016llx, seed 2: %016llx\n",
           (unsigned long long)a.weights_hash, (unsigned long long)b.weights_hash,
           (unsigned long long)c.weights_hash);
    CHECK(a.weights_hash == b.weights_hash);
    CHECK(a.test_accuracy == b.test_accuracy);
    CHECK(a.per_layer[1].loss == b.per_layer[1].loss);
    CHECK(a.weights_hash != c.weights_hash);
    /* ff-mem holds both layers and the 2 x N x hidden cache at once. */
    uint64_t params = (794 * 256 + 256) + (256 * 256 + 256);
    CHECK(a.memory.peak[FF_MEM_WEIGHTS] == params * 4);
    CHECK(a.memory.peak[FF_MEM_ACTIVATIONS] >= 2ull * 4000 * 256 * 4);

    cfg.seed = 1;
    cfg.mode = FF_MODE_BP;
    cfg.lr = 0.001;
    ff_result_t d, e;
    CHECK(check_train(&cfg, &d) == 0);
    CHECK(check_train(&cfg, &e) == 0);
    CHECK(d.weights_hash == e.weights_hash && d.test_accuracy == e.test_accuracy);
    ff_result_free(&a), ff_result_free(&b), ff_result_free(&c), ff_result_free(&d);
    ff_result_free(&e);
}

/* The two presets on the same subset, network size and epochs:
 * `best` must beat `original` by a measured margin (see the numbers below). */
static void test_best_beats_original(const char *data) {
    double accuracy[2] = {0, 0}, goodness[2] = {0, 0};
    const char *names[2] = {"original", "best"};
    for (int r = 0; r < 2; r++) {
        ff_config_t cfg = base_config(data, FF_MODE_FF_MEM);
        ff_error_t err;
        CHECK(ff_config_apply_recipe(&cfg, names[r], &err) == 0);
        cfg.layers = 2;
        cfg.hidden = 256;
        cfg.epochs = 4;
        ff_result_t res;
        double t = ff_now();
        CHECK(check_train(&cfg, &res) == 0);
        accuracy[r] = res.test_accuracy;
        goodness[r] = res.goodness_accuracy;
        printf("recipe %s (2x256, 4 epochs, 10k/2k images): accuracy %.4f, goodness read-out "
               "%.4f, %.1f s\n", names[r], accuracy[r], goodness[r], ff_now() - t);
        ff_result_free(&res);
    }
    /* Measured: original 1.35% (below chance: the layer-2 score of the
     * original recipe), best 85.65% with the softmax head and 82.50% with
     * its goodness read-out, a margin of 84 points; the thresholds leave
     * about 5 points of slack. */
    CHECK(accuracy[0] < 0.20);
    CHECK(accuracy[1] > 0.80);
    CHECK(accuracy[1] > accuracy[0] + 0.70);
    CHECK(goodness[1] > 0.77); /* the FF read-out itself learns, not only the head */
}

/* The memory model against the trainers' own accounting: the model is the
 * peak of every buffer but FF_MEM_OTHER's bookkeeping, so the accounting's
 * peak lies between the model and the model plus that bookkeeping. */
static void test_model_matches_accounting(const char *data) {
    char run_dir[FF_PATH_MAX];
    check_tempdir(run_dir, "model");
    const ff_mode_t modes[3] = {FF_MODE_FF_MEM, FF_MODE_FF_STREAM, FF_MODE_BP};
    for (int m = 0; m < 3; m++)
        for (uint32_t layers = 1; layers <= 3; layers++)
            for (int softmax = 0; softmax < 2 && (softmax == 0 || modes[m] != FF_MODE_BP);
                 softmax++) {
                ff_config_t cfg = base_config(data, modes[m]);
                cfg.layers = layers;
                cfg.hidden = 64;
                cfg.batch = 200;
                cfg.train_limit = 1000;
                cfg.test_limit = 300;
                cfg.eval_softmax = softmax;
                cfg.head_epochs = 1;
                char cmd[FF_PATH_MAX + 16];
                snprintf(cmd, sizeof cmd, "rm -rf '%s/r'", run_dir);
                CHECK(system(cmd) == 0);
                if (modes[m] == FF_MODE_FF_STREAM) snprintf(cfg.run_dir, sizeof cfg.run_dir, "%s/r", run_dir);
                ff_result_t res;
                CHECK(check_train(&cfg, &res) == 0);
                ff_memmodel_t model = ff_memmodel(&cfg, 784, 1000, 300);
                uint64_t acc = res.memory.peak_total, other = res.memory.peak[FF_MEM_OTHER];
                CHECKF(model.total <= acc && acc <= model.total + other,
                       "%s, %u layers, softmax %d: model %llu (%s), accounting %llu (other %llu)",
                       ff_mode_name(cfg.mode), layers, softmax, (unsigned long long)model.total,
                       model.phase, (unsigned long long)acc, (unsigned long long)other);
                ff_result_free(&res);
            }
    char cmd[FF_PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", run_dir);
    CHECK(system(cmd) == 0);
    printf("memory model = accounting (up to bookkeeping) for ff-mem, ff-stream and bp at 1-3 "
           "layers, with and without the head\n");
}

int main(void) {
    const char *data = check_dataset_dir();
    test_best_beats_original(data);
    test_bp_learns(data);
    test_ffmem_learns(data);
    test_ffmem_deterministic(data);
    test_model_matches_accounting(data);
    return check_exit("test_train");
}
